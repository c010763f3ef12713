// stategate-cli: see src/cli/cli.h.
#include <iostream>

#include "src/cli/cli.h"

int main(int argc, char** argv) {
  return stategate::cli::RunCli(argc, argv, std::cin, std::cout, std::cerr);
}
