# Matching benchmarks (issue #4):
#  * trialmatch_bench_corpus: the synthetic registry / patient generator
#    (bench/corpus_gen.h), a deterministic recombination of the recorded
#    studies;
#  * gen_corpus: writes it as a file `trialmatch import` reads (and patients
#    as JSON Lines);
#  * match_bench (Google Benchmark): per registry size (1k/10k/100k),
#    snapshot cold start and memory, in-process Match latency
#    (p50/p90/p99/p99.9 counters) with the index vs brute force (results
#    checked identical), batch throughput on N threads. docs/match_bench.md
#    has the commands and figures.
if(TARGET trialmatch_match)
  # corpus_flags.cc: --data_dir, --condition_codes, --seed, shared by the
  # three tools below.
  add_library(trialmatch_bench_corpus STATIC
    ${CMAKE_CURRENT_LIST_DIR}/corpus_gen.cc ${CMAKE_CURRENT_LIST_DIR}/corpus_flags.cc)
  target_include_directories(trialmatch_bench_corpus PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(trialmatch_bench_corpus PUBLIC
    absl::status absl::statusor absl::strings absl::str_format absl::flags
    nlohmann_json::nlohmann_json)
  target_compile_definitions(trialmatch_bench_corpus PRIVATE
    TRIALMATCH_SHARED_DATA_DIR="${TRIALMATCH_SHARED_DATA_DIR}"
    TRIALMATCH_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

  add_executable(gen_corpus ${CMAKE_CURRENT_LIST_DIR}/gen_corpus.cc)
  target_link_libraries(gen_corpus PRIVATE trialmatch_bench_corpus
    absl::flags absl::flags_parse absl::flags_usage)

  add_executable(match_bench ${CMAKE_CURRENT_LIST_DIR}/match_bench.cc)
  target_link_libraries(match_bench PRIVATE trialmatch_bench_corpus
    trialmatch_match trialmatch_criteria trialmatch_patient
    benchmark::benchmark absl::flags absl::flags_parse absl::flags_usage absl::time)
  target_compile_definitions(match_bench PRIVATE
    TRIALMATCH_SHARED_DATA_DIR="${TRIALMATCH_SHARED_DATA_DIR}"
    TRIALMATCH_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
