#!/usr/bin/env bash
# Installs trialmatch's dependencies from Debian 12 (bookworm) packages.
#   deploy/install-deps.sh          build + runtime dependencies (to run the service)
#   deploy/install-deps.sh test     also what the test suite needs (gtest, Python gRPC
#                                   client for end-to-end tests, clang for fuzzers)
# Run as root (or with sudo available). Idempotent.
set -euo pipefail

BUILD_PKGS=(
  g++ cmake ninja-build pkg-config git ca-certificates
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libre2-dev nlohmann-json3-dev libcurl4-openssl-dev libsqlite3-dev
)
TEST_PKGS=(
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-grpcio python3-protobuf
  clang libclang-rt-14-dev sqlite3 procps
)

pkgs=("${BUILD_PKGS[@]}")
if [[ "${1:-}" == "test" ]]; then
  pkgs+=("${TEST_PKGS[@]}")
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
