# store_bench: StudyStore upsert throughput (studies/s, MB/s), GetStudy
# latency, full scans and local search on the recorded corpus.
add_executable(store_bench ${CMAKE_CURRENT_LIST_DIR}/store_bench.cc)
target_link_libraries(store_bench PRIVATE trialmatch_store benchmark::benchmark)
target_compile_definitions(store_bench PRIVATE
  TRIALMATCH_SHARED_DATA_DIR="${TRIALMATCH_SHARED_DATA_DIR}")
