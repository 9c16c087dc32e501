// mnist-train's entry point: everything lives in the core and CLI libraries.
#include "cli/app.hpp"

int main(int argc, char** argv) {
  mnist::cli::reexec_for_fast_blas(argv);
  return mnist::cli::run(argc, argv);
}
