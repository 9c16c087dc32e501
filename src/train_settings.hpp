// What train_job.cpp takes from train_settings.cpp beyond train_job.hpp
// (private to src/).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace mnist::detail {

/// The form of the settings a checkpoint holds, compared as legacy
/// JSON: a legacy document as it is (its missing keys stay missing).
nlohmann::ordered_json resume_record(const nlohmann::ordered_json& saved,
                                     const std::string& origin);

}  // namespace mnist::detail
