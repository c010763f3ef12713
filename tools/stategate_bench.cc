// stategate-bench: see src/bench/bench_cli.h.
#include <iostream>

#include "src/bench/bench_cli.h"

int main(int argc, char** argv) {
  return stategate::bench::RunBenchCli(argc, argv, std::cout, std::cerr);
}
