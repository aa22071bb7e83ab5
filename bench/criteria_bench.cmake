# criteria_bench: eligibility compiler throughput on every recorded study
# (studies/s on one core; goal >= 5,000), one large study, rule loading.
# criteria_corpus_report: coverage of the corpus (per kind, read / partly
# read / unparsed criteria) and samples of unparsed criteria mentioning a
# word (e.g. --grep=platelet), for widening the rules.
add_executable(criteria_bench ${CMAKE_CURRENT_LIST_DIR}/criteria_bench.cc)
target_link_libraries(criteria_bench PRIVATE trialmatch_criteria benchmark::benchmark)
target_compile_definitions(criteria_bench PRIVATE
  TRIALMATCH_SHARED_DATA_DIR="${TRIALMATCH_SHARED_DATA_DIR}"
  TRIALMATCH_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

add_executable(criteria_corpus_report ${CMAKE_CURRENT_LIST_DIR}/criteria_corpus_report.cc)
target_link_libraries(criteria_corpus_report PRIVATE trialmatch_criteria)
target_compile_definitions(criteria_corpus_report PRIVATE
  TRIALMATCH_SHARED_DATA_DIR="${TRIALMATCH_SHARED_DATA_DIR}"
  TRIALMATCH_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

# criteria_profile: compiles the corpus after warm-up passes with callgrind's
# collection switched on around the measured passes (deterministic cost on a
# loaded machine): valgrind --tool=callgrind --collect-atstart=no ...
add_executable(criteria_profile ${CMAKE_CURRENT_LIST_DIR}/criteria_profile.cc)
target_link_libraries(criteria_profile PRIVATE trialmatch_criteria)
target_compile_definitions(criteria_profile PRIVATE
  TRIALMATCH_SHARED_DATA_DIR="${TRIALMATCH_SHARED_DATA_DIR}"
  TRIALMATCH_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
