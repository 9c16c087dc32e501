// CLI parsing: defaults match mnist-node, aliases work, bad values are
// refused at parse time (no training is started by parsing).
#include "cli/app.hpp"
#include "cli/shared.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "mnist/error.hpp"

namespace mnist::cli {
namespace {

Options parse(std::vector<std::string> args) {
  Options options;
  auto app = build_app(options);
  std::vector<const char*> argv = {"mnist-train"};
  for (const auto& a : args) {
    argv.push_back(a.c_str());
  }
  app->parse(static_cast<int>(argv.size()), argv.data());
  return options;
}

TEST(CliTest, DefaultsMatchMnistNode) {
  const Options o = parse({});
  EXPECT_EQ(o.train.epochs, 20);
  EXPECT_EQ(o.train.batch_size, 128);
  EXPECT_DOUBLE_EQ(o.train.validation_split, 0.15);
  EXPECT_TRUE(o.train.model_save_path.empty());
  EXPECT_FALSE(o.train.gpu);
  EXPECT_TRUE(o.train.cuda_graphs);
  EXPECT_TRUE(o.train.onednn);
  EXPECT_FALSE(o.train.seed.has_value());
  EXPECT_EQ(o.global.log_level, "info");
}

TEST(CliTest, KebabAndJsSpellings) {
  const Options a = parse({"--batch-size", "64", "--model-save-path", "/tmp/x"});
  const Options b = parse({"--batch_size", "64", "--model_save_path", "/tmp/x"});
  EXPECT_EQ(a.train.batch_size, 64);
  EXPECT_EQ(b.train.batch_size, 64);
  EXPECT_EQ(b.train.model_save_path, "/tmp/x");
}

TEST(CliTest, AllTrainingFlags) {
  const Options o =
      parse({"--epochs", "3", "--validation-split", "0", "--seed", "9", "--threads", "1",
             "--train-limit", "100", "--test-limit", "50", "--gpu", "--data-dir", "/d", "--quiet"});
  EXPECT_EQ(o.train.epochs, 3);
  EXPECT_DOUBLE_EQ(o.train.validation_split, 0.0);
  EXPECT_EQ(o.train.seed.value(), 9U);
  EXPECT_EQ(o.train.threads, 1);
  EXPECT_EQ(o.train.train_limit, 100);
  EXPECT_EQ(o.train.test_limit, 50);
  EXPECT_TRUE(o.train.gpu);
  EXPECT_FALSE(parse({"--gpu", "--no-cuda-graphs"}).train.cuda_graphs);
  EXPECT_FALSE(parse({"--no-onednn"}).train.onednn);
  EXPECT_FALSE(parse({"--libtorch-conv"}).train.onednn) << "the former name still works";
  EXPECT_FALSE(parse({"evaluate", "--model", "/m", "--no-onednn"}).evaluate.onednn);
  EXPECT_FALSE(parse({"evaluate", "--model", "/m", "--libtorch-conv"}).evaluate.onednn);
  EXPECT_TRUE(parse({"evaluate", "--model", "/m"}).evaluate.onednn);
  EXPECT_EQ(o.train.data_dir, "/d");
  EXPECT_TRUE(o.global.quiet);
  EXPECT_EQ(parse({"--precision", "bf16"}).train.precision, "bf16");
  EXPECT_EQ(parse({}).train.precision, "fp32");
}

TEST(CliTest, Subcommands) {
  const Options e = parse({"evaluate", "--model", "/m", "--test-limit", "5", "--json"});
  EXPECT_EQ(e.evaluate.model, "/m");
  EXPECT_EQ(e.evaluate.test_limit, 5);
  EXPECT_TRUE(e.evaluate.json);
  const Options p = parse({"predict", "--model", "/m", "a.png", "b.pgm", "--invert"});
  EXPECT_EQ(p.predict.images, (std::vector<std::string>{"a.png", "b.pgm"}));
  EXPECT_TRUE(p.predict.invert);
  EXPECT_THROW(parse({"summary"}), CLI::RequiredError);
  const Options t = parse({"--model-load-path", "/m", "--checkpoint-dir", "/c", "--resume"});
  EXPECT_EQ(t.train.model_load_path, "/m");
  EXPECT_TRUE(t.train.resume);
}

TEST(CliTest, RefusesBadValues) {
  EXPECT_THROW(parse({"--epochs", "0"}), CLI::ValidationError);
  EXPECT_THROW(parse({"--batch-size", "-5"}), CLI::ValidationError);
  EXPECT_THROW(parse({"--validation-split", "1.5"}), CLI::ValidationError);
  EXPECT_THROW(parse({"--validation-split", "1"}), CLI::ValidationError);
  EXPECT_THROW(parse({"--epochs", "many"}), CLI::ParseError);
  EXPECT_THROW(parse({"--no-such-flag"}), CLI::ParseError);
  EXPECT_THROW(parse({"--log-level", "loud"}), CLI::ParseError);
  EXPECT_THROW(parse({"--precision", "fp16"}), CLI::ParseError);
}

std::string parse_error(std::vector<std::string> args) {
  try {
    parse(std::move(args));
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "no error";
}

TEST(CliTest, AbsurdValuesGetAUsageErrorOrRun) {
  // Refused, each with its bound.
  EXPECT_NE(parse_error({"--threads", "10000"}).find("must be an integer of at most 1024"),
            std::string::npos);
  EXPECT_NE(parse_error({"--epochs", "99999999999999999999"})
                .find("must be an integer of at most 9223372036854775807"),
            std::string::npos);
  EXPECT_NE(parse_error({"--batch-size", "-99999999999999999999"})
                .find("must be an integer of at least 1"),
            std::string::npos);
  EXPECT_NE(parse_error({"serve", "--sample", "1000000000"}).find("1000000000"), std::string::npos);
  // Accepted: train() takes a batch larger than the data as the whole set
  // (TrainTest.BatchLargerThanTheDataIsTheWholeSet), epochs run until Ctrl-C,
  // limits larger than a file take the whole file.
  EXPECT_EQ(parse({"--threads", "1024"}).train.threads, 1024);
  EXPECT_EQ(parse({"--batch-size", "9223372036854775807"}).train.batch_size,
            std::numeric_limits<int64_t>::max());
  EXPECT_EQ(parse({"--epochs", "1000000000", "--train-limit", "1"}).train.epochs, 1000000000);
  EXPECT_EQ(parse({"--test-limit", "99999999999"}).train.test_limit, 99999999999);
}

TEST(CliTest, ValidateChecksFlagsTogether) {
  EXPECT_NO_THROW(validate(parse({}).train));
  EXPECT_NO_THROW(validate(parse({"--checkpoint-dir", "/c", "--resume"}).train));
  EXPECT_THROW(validate(parse({"--resume"}).train), ConfigError);
  EXPECT_THROW(
      validate(parse({"--checkpoint-dir", "/c", "--resume", "--model-load-path", "/m"}).train),
      ConfigError);
}

TEST(CliTest, TrainingWorkflowFlags) {
  const TrainOptions d = parse({}).train;
  EXPECT_EQ(d.optimizer, "rmsprop");
  EXPECT_EQ(d.learning_rate, 0);
  EXPECT_EQ(d.dataset, "mnist");
  EXPECT_TRUE(d.dropout);
  EXPECT_TRUE(d.shuffle);
  EXPECT_EQ(d.early_stopping_patience, 0);
  EXPECT_FALSE(d.monitor.has_value());
  EXPECT_EQ(d.reduce_lr_patience, 0);
  const TrainOptions o = parse({"--optimizer",
                                "adamax",
                                "--learning-rate",
                                "0.02",
                                "--no-dropout",
                                "--no-shuffle",
                                "--early-stopping-patience",
                                "3",
                                "--monitor",
                                "val_acc",
                                "--min-delta",
                                "0.001",
                                "--restore-best-weights",
                                "--save-best",
                                "--model-save-path",
                                "/m",
                                "--reduce-lr-patience",
                                "2",
                                "--reduce-lr-factor",
                                "0.5",
                                "--reduce-lr-min-delta",
                                "0.01",
                                "--min-learning-rate",
                                "1e-5",
                                "--csv-log",
                                "/l.csv",
                                "--quantize",
                                "uint8",
                                "--weight-shard-size",
                                "4194304",
                                "--dataset",
                                "fashion-mnist",
                                "--class-weight",
                                "my weights.json"})
                             .train;
  EXPECT_EQ(o.optimizer, "adamax");
  EXPECT_DOUBLE_EQ(o.learning_rate, 0.02);
  EXPECT_FALSE(o.dropout);
  EXPECT_FALSE(o.shuffle);
  EXPECT_EQ(o.early_stopping_patience, 3);
  EXPECT_EQ(o.monitor.value(), "val_acc");
  EXPECT_DOUBLE_EQ(o.min_delta.value(), 0.001);
  EXPECT_TRUE(o.restore_best_weights);
  EXPECT_TRUE(o.save_best);
  EXPECT_EQ(o.reduce_lr_patience, 2);
  EXPECT_DOUBLE_EQ(o.reduce_lr_factor.value(), 0.5);
  EXPECT_DOUBLE_EQ(o.reduce_lr_min_delta.value(), 0.01);
  EXPECT_DOUBLE_EQ(o.min_learning_rate.value(), 1e-5);
  EXPECT_EQ(o.csv_log, "/l.csv");
  EXPECT_EQ(o.quantize, "uint8");
  EXPECT_EQ(o.weight_shard_size, 4194304U);
  EXPECT_EQ(o.dataset, "fashion-mnist");
  EXPECT_EQ(o.class_weight, "my weights.json");
  EXPECT_EQ(train_settings(o).class_weight, "my weights.json");
  EXPECT_NO_THROW(validate(o));
  // Its resume hint parses back to the same settings.
  const std::string hint = resume_command("mnist-train", [&] {
    TrainOptions c = o;
    c.checkpoint_dir = "/ck";
    return c;
  }());
  EXPECT_NE(hint.find("--optimizer adamax --learning-rate 0.02"), std::string::npos) << hint;
  EXPECT_NE(hint.find("--csv-log /l.csv --quantize uint8 --weight-shard-size 4194304 "
                      "--class-weight 'my weights.json'"),
            std::string::npos)
      << hint;

  for (const std::vector<std::string>& bad : {std::vector<std::string>{"--optimizer", "nadam"},
                                              {"--optimizer", "RMSProp"},
                                              {"--quantize", "int8"},
                                              {"--quantize", "float32"},
                                              {"--weight-shard-size", "0"},
                                              {"--weight-shard-size", "-1"},
                                              {"--weight-shard-size", "4GB"},
                                              {"--learning-rate", "0"},
                                              {"--learning-rate", "-0.1"},
                                              {"--learning-rate", "fast"},
                                              {"--learning-rate", "inf"},
                                              {"--early-stopping-patience", "-1"},
                                              {"--monitor", "accuracy"},
                                              {"--min-delta", "-0.1"},
                                              {"--reduce-lr-factor", "1"},
                                              {"--reduce-lr-factor", "0"},
                                              {"--min-learning-rate", "-1"},
                                              {"--dataset", "cifar10"}}) {
    EXPECT_THROW(parse(bad), CLI::ParseError) << bad[0] << " " << bad[1];
  }
}

TEST(CliTest, TensorBoardFlags) {
  const TrainOptions d = parse({}).train;
  EXPECT_EQ(d.tensorboard_dir, "");
  EXPECT_EQ(d.tensorboard_update_freq, "epoch");
  EXPECT_EQ(train_settings(d).tensorboard_update_freq, "epoch");
  TrainOptions o =
      parse({"--tensorboard-dir", "/logs/run 1", "--tensorboard-update-freq", "batch"}).train;
  EXPECT_NO_THROW(validate(o));
  const TrainSettings s = train_settings(o);
  EXPECT_EQ(s.tensorboard_dir, "/logs/run 1");
  EXPECT_EQ(s.tensorboard_update_freq, "batch");
  o.checkpoint_dir = "/ck";
  const std::string hint = resume_command("mnist-train", o);
  EXPECT_NE(hint.find("--tensorboard-dir '/logs/run 1' --tensorboard-update-freq batch "
                      "--checkpoint-dir /ck --resume"),
            std::string::npos)
      << hint;
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"--tensorboard-dir", ""},
                                              {"--tensorboard-update-freq", "step"},
                                              {"--tensorboard-update-freq", "100"}}) {
    EXPECT_THROW(parse(bad), CLI::ParseError) << bad[0] << " " << bad[1];
  }
  try {
    validate(parse({"--tensorboard-update-freq", "batch"}).train);
    FAIL() << "--tensorboard-update-freq without a folder was taken";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "--tensorboard-update-freq needs --tensorboard-dir (the folder of the logs)");
  }
}

TEST(CliTest, ValidateRefusesFlagsWithoutTheirCallback) {
  for (const std::vector<std::string>& bad : {
           std::vector<std::string>{"--monitor", "loss"},
           {"--min-delta", "0.1"},
           {"--restore-best-weights"},
           {"--reduce-lr-factor", "0.5"},
           {"--reduce-lr-min-delta", "0.5"},
           {"--min-learning-rate", "0.1"},
           {"--save-best"},
           {"--early-stopping-patience", "2", "--validation-split", "0"},
           {"--save-best", "--model-save-path", "/m", "--monitor", "val_acc", "--validation-split",
            "0"},
           {"--no-dropout", "--model-load-path", "/m"},
       }) {
    EXPECT_THROW(validate(parse(bad).train), ConfigError) << bad[0];
  }
  EXPECT_NO_THROW(validate(
      parse({"--early-stopping-patience", "2", "--monitor", "loss", "--validation-split", "0"})
          .train));
}

TEST(CliTest, ResumeNeedsTheSameWorkflowSettings) {
  const auto settings = [](std::vector<std::string> args) {
    return to_json(parse(std::move(args)).train);
  };
  const nlohmann::ordered_json adam = settings({"--optimizer", "adam"});
  EXPECT_NO_THROW(check_resumable(adam, settings({"--optimizer", "adam"}), "ck"));
  EXPECT_THROW(check_resumable(adam, settings({}), "ck"), ConfigError);
  EXPECT_THROW(check_resumable(settings({"--early-stopping-patience", "3"}), settings({}), "ck"),
               ConfigError);
  EXPECT_THROW(check_resumable(settings({}), settings({"--no-dropout"}), "ck"), ConfigError);
  EXPECT_THROW(check_resumable(settings({"--class-weight", "balanced"}), settings({}), "ck"),
               ConfigError);
  EXPECT_THROW(check_resumable(settings({"--class-weight", "balanced"}),
                               settings({"--class-weight", "w.json"}), "ck"),
               ConfigError);
  EXPECT_NO_THROW(check_resumable(settings({"--class-weight", "w.json"}),
                                  settings({"--class-weight", "w.json"}), "ck"));
  // A checkpoint made before a setting existed holds its default.
  nlohmann::ordered_json old = settings({});
  old.erase("optimizer");
  old.erase("dropout");
  EXPECT_NO_THROW(check_resumable(old, settings({}), "ck"));
  EXPECT_THROW(check_resumable(old, settings({"--optimizer", "sgd"}), "ck"), ConfigError);
}

/// The resume hint is built from the parsed options: every flag that
/// differs from its default, once, in its main spelling, quoted for a shell,
/// and never --model-load-path (which --resume refuses).
TEST(CliTest, ResumeCommandFromTheParsedOptions) {
  EXPECT_EQ(resume_command("mnist-train", parse({"--checkpoint-dir", "/tmp/ck"}).train),
            "mnist-train --checkpoint-dir /tmp/ck --resume");
  const TrainOptions o =
      parse({"--epochs", "3", "--batch_size", "64", "--seed", "5", "--validation-split", "0.2",
             "--model_save_path", "/tmp/my model", "--libtorch-conv", "--checkpoint-dir", "/ck",
             "--model-load-path", "/m", "--precision", "bf16", "--resume"})
          .train;
  const std::string cmd = resume_command("./build/mnist-train", o);
  EXPECT_EQ(cmd,
            "./build/mnist-train --epochs 3 --batch-size 64 --validation-split 0.2 --seed 5 "
            "--model-save-path '/tmp/my model' --no-onednn --precision bf16 --checkpoint-dir /ck "
            "--resume");
  // The command it prints parses back to the same run.
  const TrainOptions again =
      parse({"--epochs", "3", "--batch-size", "64", "--validation-split", "0.2", "--seed", "5",
             "--model-save-path", "/tmp/my model", "--no-onednn", "--precision", "bf16",
             "--checkpoint-dir", "/ck", "--resume"})
          .train;
  EXPECT_EQ(resume_command("./build/mnist-train", again), cmd);
  EXPECT_NO_THROW(validate(again));
}

TEST(CliTest, LearningRateScheduleFlags) {
  const TrainOptions cosine = parse({"--epochs", "3", "--lr-schedule", "cosine", "--warmup-epochs",
                                     "0.5", "--lr-alpha", "0.1", "--learning-rate", "0.002"})
                                  .train;
  EXPECT_NO_THROW(validate(cosine));
  const LrSchedule c = train_settings(cosine).lr_schedule;
  EXPECT_EQ(c.kind, LrScheduleKind::kCosine);
  EXPECT_EQ(c.warmup_epochs, 0.5);
  EXPECT_EQ(c.alpha, 0.1);
  EXPECT_EQ(to_json(cosine)["lr_schedule"]["kind"], "cosine");
  const TrainOptions step = parse({"--lr-schedule", "step", "--lr-boundaries", "2,4.5",
                                   "--lr-values", "0.1,0.01,1e-3", "--checkpoint-dir", "/ck"})
                                .train;
  EXPECT_NO_THROW(validate(step));
  EXPECT_EQ(train_settings(step).lr_schedule.boundaries, (std::vector<double>{2, 4.5}));
  EXPECT_EQ(train_settings(step).lr_schedule.values, (std::vector<double>{0.1, 0.01, 0.001}));
  EXPECT_EQ(resume_command("mnist-train", step),
            "mnist-train --lr-schedule step --lr-boundaries 2,4.5 --lr-values 0.1,0.01,0.001 "
            "--checkpoint-dir /ck --resume");
  const TrainOptions exp =
      parse({"--lr-schedule", "exponential", "--lr-decay-rate", "0.5", "--lr-decay-epochs", "2",
             "--lr-staircase", "--checkpoint-dir", "/ck"})
          .train;
  EXPECT_NO_THROW(validate(exp));
  EXPECT_EQ(resume_command("mnist-train", exp),
            "mnist-train --lr-schedule exponential --lr-decay-rate 0.5 --lr-decay-epochs 2 "
            "--lr-staircase --checkpoint-dir /ck --resume");
  const TrainOptions one = parse({"--lr-schedule", "onecycle", "--lr-pct-start", "0.3", "--lr-div",
                                  "10", "--lr-div-final", "1e4"})
                               .train;
  EXPECT_NO_THROW(validate(one));
  EXPECT_EQ(train_settings(one).lr_schedule.div_final, 1e4);
  // A resumed run keeps its schedule.
  EXPECT_THROW(check_resumable(to_json(cosine), to_json(parse({"--epochs", "3"}).train), "ck"),
               ConfigError);
  EXPECT_NO_THROW(check_resumable(to_json(cosine), to_json(cosine), "ck"));

  for (const std::vector<std::string>& bad : {
           std::vector<std::string>{"--lr-schedule", "linear"},
           {"--lr-alpha", "1.5"},
           {"--lr-values", "0.1,-1"},
           {"--lr-boundaries", "1,x"},
           {"--warmup-epochs", "-1"},
           {"--lr-pct-start", "1"},
           {"--lr-div-final", "0"},
       }) {
    EXPECT_THROW(parse(bad), CLI::ParseError) << bad[0] << " " << bad[1];
  }
  const auto refused = [](std::vector<std::string> args) {
    try {
      validate(parse(std::move(args)).train);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(refused({"--lr-decay-rate", "0.5"}),
            "--lr-decay-rate is for --lr-schedule exponential, not constant");
  EXPECT_EQ(refused({"--lr-schedule", "onecycle", "--warmup-epochs", "1"}),
            "--warmup-epochs is for --lr-schedule constant or cosine, not onecycle");
  EXPECT_EQ(refused({"--lr-schedule", "cosine", "--lr-alpha", "0", "--lr-div", "25"}),
            "--lr-div is for --lr-schedule onecycle, not cosine");
  EXPECT_EQ(refused({"--lr-schedule", "exponential", "--lr-decay-epochs", "1"}),
            "--lr-schedule exponential needs --lr-decay-rate R > 0 (ExponentialDecay's "
            "decay_rate: the rate is multiplied by R every --lr-decay-epochs)");
  EXPECT_EQ(refused({"--warmup-epochs", "20"}),
            "--warmup-epochs 20 must be shorter than the 20 epochs of training");
  EXPECT_EQ(refused({"--lr-schedule", "step", "--lr-boundaries", "1", "--lr-values", "0.1,0.01",
                     "--learning-rate", "0.1"}),
            "--learning-rate is not used by --lr-schedule step: its rates are --lr-values "
            "(PiecewiseConstantDecay's values)");
  EXPECT_EQ(refused({"--lr-schedule", "step", "--lr-boundaries", "1,2", "--lr-values", "0.1,0.01"}),
            "--lr-schedule step needs --lr-boundaries (epochs) and one more rate in --lr-values "
            "than boundaries (PiecewiseConstantDecay's), not 2 and 2");
  EXPECT_NE(refused({"--lr-schedule", "cosine", "--reduce-lr-patience", "2"})
                .find("--reduce-lr-patience cannot be combined with --lr-schedule cosine: Keras's "
                      "ReduceLROnPlateau"),
            std::string::npos);
  EXPECT_NE(refused({"--warmup-epochs", "1", "--reduce-lr-patience", "2"}), "");
  EXPECT_EQ(refused({"--lr-schedule", "constant", "--reduce-lr-patience", "2"}), "");
}

TEST(CliTest, RunMapsErrorsToExitCodes) {
  const char* bad_flag[] = {"mnist-train", "--no-such-flag"};
  EXPECT_EQ(run(2, bad_flag), static_cast<int>(ExitCode::kUsage));
  const char* bad_dir[] = {"mnist-train", "--data-dir", "/nonexistent", "--quiet"};
  EXPECT_EQ(run(4, bad_dir), static_cast<int>(ExitCode::kData));
  const char* help[] = {"mnist-train", "--help"};
  EXPECT_EQ(run(2, help), 0);
}

TEST(CliTest, ServeSubcommand) {
  const Options o = parse({"serve", "--model", MNIST_TEST_DATA_DIR});
  EXPECT_EQ(o.serve.model_dir, MNIST_TEST_DATA_DIR);
  EXPECT_EQ(o.serve.host, "127.0.0.1");  // loopback unless asked
  EXPECT_EQ(o.serve.port, 8080);
  EXPECT_EQ(o.serve.sample, 200);
  EXPECT_TRUE(o.serve.cors_origin.empty());
  const Options p = parse({"--quiet", "serve", "--model", MNIST_TEST_DATA_DIR, "--port", "0",
                           "--host", "0.0.0.0", "--cors", "https://example.org"});
  EXPECT_EQ(p.serve.port, 0);
  EXPECT_EQ(p.serve.host, "0.0.0.0");
  EXPECT_EQ(p.serve.cors_origin, "https://example.org");
  EXPECT_TRUE(p.global.quiet);
  EXPECT_THROW(parse({"serve"}), CLI::RequiredError);
  EXPECT_THROW(parse({"serve", "--model", "/nonexistent"}), CLI::ValidationError);
  EXPECT_THROW(parse({"serve", "--model", MNIST_TEST_DATA_DIR, "--port", "-1"}),
               CLI::ValidationError);
  EXPECT_THROW(parse({"serve", "--model", MNIST_TEST_DATA_DIR, "--epochs", "1"}), CLI::ParseError);
}

TEST(CliTest, NoSubcommandStillTrains) {
  const Options o = parse({"--epochs", "1"});
  EXPECT_EQ(o.train.epochs, 1);
  EXPECT_TRUE(o.serve.model_dir.empty());
}

/// Class names are folder names: any UTF-8. evaluate's table aligns them by
/// terminal columns and cuts long ones with an ellipsis.
TEST(CliTest, NamesAreMeasuredInColumns) {
  EXPECT_EQ(display_width("Ankle boot"), 10U);
  EXPECT_EQ(display_width("h\xc3\xa9llo"), 5U);              // é: two bytes, one column
  EXPECT_EQ(display_width("e\xcc\x81"), 1U);                 // e + combining acute
  EXPECT_EQ(display_width("\xe7\x8c\xab\xe7\x8a\xac"), 4U);  // 猫犬: wide
  EXPECT_EQ(display_width("\xf0\x9f\x90\x88"), 2U);          // 🐈
  EXPECT_EQ(display_width("a\xff"
                          "b"),
            3U);                             // a byte that is not UTF-8: one
  EXPECT_EQ(display_width("\xe7\x8c"), 2U);  // a cut sequence: its bytes
  EXPECT_EQ(truncate_to_width("Ankle boot", 10), "Ankle boot");
  EXPECT_EQ(truncate_to_width("Ankle boot", 6), "Ankle\xe2\x80\xa6");
  EXPECT_EQ(display_width(truncate_to_width("Ankle boot", 6)), 6U);
  // Never a code point cut in two, never wider than asked.
  EXPECT_EQ(truncate_to_width("\xe7\x8c\xab\xe7\x8a\xac\xe7\x8c\xab", 4),
            "\xe7\x8c\xab\xe2\x80\xa6");
  EXPECT_EQ(truncate_to_width("h\xc3\xa9llo", 3), "h\xc3\xa9\xe2\x80\xa6");
  EXPECT_EQ(pad_to_width("h\xc3\xa9", 4, true), "h\xc3\xa9  ");
  EXPECT_EQ(pad_to_width("7", 3, false), "  7");
  EXPECT_EQ(pad_to_width("long", 2, false), "long");
}

/// evaluate and predict name digits by the digit, anything else by its
/// index and name.
TEST(CliTest, OutputNamesOfDigitsFashionAndFolders) {
  const OutputNames digits = output_names({{"classNames", {"5", "6", "7"}}}, 3);
  EXPECT_TRUE(digits.digits);
  EXPECT_EQ(digits.with_name(2), "7");
  EXPECT_EQ(digits.short_name(2), "7");
  const OutputNames folders = output_names({{"classNames", {"cat", "dog"}}}, 2);
  EXPECT_FALSE(folders.digits);
  EXPECT_TRUE(folders.named);
  EXPECT_EQ(folders.with_name(1), "1 dog");
  EXPECT_EQ(folders.short_name(1), "1");
  const OutputNames mnist = output_names(nullptr, 10);
  EXPECT_TRUE(mnist.digits);
  EXPECT_FALSE(mnist.named);
}

/// evaluate's text: the table marks undefined scores and says what they
/// are; the matrix names its rows; more than 20 classes go to --json only.
TEST(CliTest, EvaluationTextOfNamesAndUndefinedScores) {
  // Two images of "cat", both right; "dog" absent and never predicted; one
  // "bird", predicted as "cat".
  const at::Tensor confusion = at::tensor({2, 0, 0, 0, 0, 0, 1, 0, 0}, at::kLong).view({3, 3});
  const OutputNames names = output_names({{"classNames", {"cat", "dog", "bird"}}}, 3);
  const std::string table = class_metrics_text(per_class_metrics(confusion), names, 2.0 / 3.0);
  EXPECT_NE(table.find("  0 cat           0.6667     1.0000     0.8000          2\n"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("  1 dog           0.0000*    0.0000*    0.0000*         0\n"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("  2 bird          0.0000*    0.0000     0.0000          1\n"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("  accuracy                              0.6667          3\n"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("  * 0 by convention"), std::string::npos) << table;
  const std::string matrix = confusion_text(confusion, names);
  EXPECT_NE(matrix.find("rows: true class, columns: predicted, by index"), std::string::npos);
  EXPECT_NE(matrix.find("\n  2 bird     1     0     0\n"), std::string::npos) << matrix;
  // All defined: no note.
  const at::Tensor right = at::tensor({3, 0, 0, 4}, at::kLong).view({2, 2});
  const OutputNames two = output_names({{"classNames", {"cat", "dog"}}}, 2);
  EXPECT_EQ(class_metrics_text(per_class_metrics(right), two, 1.0).find('*'), std::string::npos);
  // 21 classes: the matrix only in --json.
  const at::Tensor wide = at::eye(21, at::kLong);
  std::vector<std::string> many;
  for (int c = 0; c < 21; ++c) {
    many.push_back("class " + std::to_string(c));
  }
  const std::string line = confusion_text(wide, output_names({{"classNames", many}}, 21));
  EXPECT_EQ(
      line,
      "\nConfusion matrix: 21 classes, too wide to print; --json has it (\"confusion\", rows: "
      "true class, columns: predicted)\n");
}

}  // namespace
}  // namespace mnist::cli
