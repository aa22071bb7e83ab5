# load_client: open-loop MatchPatient load on a local trialmatch server
# (loopback only, bounded duration): achieved rate and latency percentiles.
# Uses the synthetic patients of trialmatch_bench_corpus (match.cmake).
if(TARGET trialmatch_proto AND TARGET trialmatch_match)
  add_executable(load_client ${CMAKE_CURRENT_LIST_DIR}/load_client.cc)
  target_link_libraries(load_client PRIVATE trialmatch_bench_corpus
    trialmatch_proto absl::flags absl::flags_parse absl::flags_usage)
endif()
