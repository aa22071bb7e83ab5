# ctgov_bench: JsonSplitter and /studies page parsing throughput on recorded studies.
add_executable(ctgov_bench ${CMAKE_CURRENT_LIST_DIR}/ctgov_bench.cc)
target_link_libraries(ctgov_bench PRIVATE trialmatch_ctgov benchmark::benchmark)
target_compile_definitions(ctgov_bench PRIVATE
  TRIALMATCH_SHARED_DATA_DIR="${TRIALMATCH_SHARED_DATA_DIR}")
