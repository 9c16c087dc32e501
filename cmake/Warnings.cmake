# mnist_warnings: an INTERFACE target carrying our warning flags; linked PRIVATE
# to our own targets only, so third-party headers are not held to them.
add_library(mnist_warnings INTERFACE)
target_compile_options(mnist_warnings INTERFACE -Wall -Wextra -Wpedantic)
if(MNIST_WARNINGS_AS_ERRORS)
  target_compile_options(mnist_warnings INTERFACE -Werror)
endif()
