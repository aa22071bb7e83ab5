# patient_bench: reader throughput (JSON, proto, FHIR Bundle, JSONL).
add_executable(patient_bench ${CMAKE_CURRENT_LIST_DIR}/patient_bench.cc)
target_link_libraries(patient_bench PRIVATE trialmatch_patient benchmark::benchmark)
target_compile_definitions(patient_bench PRIVATE
  TRIALMATCH_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data")
