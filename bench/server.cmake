# server_bench: GetStudy latency from the cache over gRPC on loopback
# (p50/p90/p99/p99.9, requests/s); in-process server by default, or
# --target=host:port for a running `trialmatch serve`.
if(TARGET trialmatch_server)
  add_executable(server_bench ${CMAKE_CURRENT_LIST_DIR}/server_bench.cc)
  target_link_libraries(server_bench PRIVATE trialmatch_server)
  target_compile_definitions(server_bench PRIVATE
    TRIALMATCH_SHARED_DATA_DIR="${TRIALMATCH_SHARED_DATA_DIR}")
endif()
