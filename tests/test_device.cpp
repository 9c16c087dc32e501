// Device selection and CPU set-up: CUDA is refused with a reason (never a
// silent CPU fallback), threads are set, bf16 is reported only where oneDNN
// may use it.
#include "mnist/device.hpp"

#include <cstdlib>

#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include "mnist/error.hpp"

namespace mnist {
namespace {

TEST(DeviceTest, CudaIsRefusedWithTheReasonOrSelected) {
  EXPECT_TRUE(select_device(false).is_cpu());
  const auto reason = cuda_unavailable_reason();
  if (!reason) {
    EXPECT_TRUE(select_device(true).is_cuda());
    return;
  }
  EXPECT_NE(reason->find(kCudaReadmeHint), std::string::npos) << *reason;
  try {
    select_device(true);
    FAIL() << "expected DeviceError";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find(*reason), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("--gpu"), std::string::npos)
        << "the core names no CLI flag: " << e.what();
  }
}

TEST(DeviceTest, ThreadsAndDescription) {
  EXPECT_EQ(configure_cpu_threads(1), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  EXPECT_EQ(describe_device(c10::Device(c10::kCPU)), "CPU (1 threads)");
  EXPECT_GE(configure_cpu_threads(0), 1);  // one per core
  EXPECT_STREQ(precision_name(Precision::kBFloat16), "bf16");
  EXPECT_STREQ(precision_name(Precision::kFloat32), "fp32");
}

TEST(DeviceTest, Bf16OnlyWhereOnednnMayUseIt) {
  // Held to AVX2 (ONEDNN_MAX_CPU_ISA, as when emulating an AVX2 machine),
  // oneDNN has no bf16 kernels, whatever /proc/cpuinfo says.
  const char* isa = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (isa != nullptr && std::string(isa) == "AVX2") {
    EXPECT_FALSE(cpu_has_bf16());
  }
  EXPECT_EQ(cpu_has_bf16(), cpu_has_bf16());  // cached, stable
}

/// Asks for better OpenBLAS kernels only where OpenBLAS chose generic ones,
/// only ones this CPU runs, and never over the user's own choice.
TEST(DeviceTest, OpenblasCoretypeFix) {
  const char* before = std::getenv("OPENBLAS_CORETYPE");
  const std::string saved = before != nullptr ? before : "";
  ::setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  EXPECT_FALSE(openblas_coretype_fix().has_value()) << "OPENBLAS_CORETYPE is the user's";
  ::unsetenv("OPENBLAS_CORETYPE");
  if (const auto fix = openblas_coretype_fix()) {
    if (*fix == "SkylakeX") {
      EXPECT_TRUE(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"));
    } else {
      EXPECT_EQ(*fix, "Haswell");
      EXPECT_TRUE(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
    }
  }
  if (before != nullptr) {
    ::setenv("OPENBLAS_CORETYPE", saved.c_str(), 1);
  }
}

}  // namespace
}  // namespace mnist
