// trialmatch: patient–trial matching engine. Everything lives in the
// libraries; see cli/cli.h for the subcommands.
#include "cli/cli.h"

int main(int argc, char** argv) { return trialmatch::cli::Main(argc, argv); }
