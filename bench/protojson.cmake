# protojson_bench: protojson::AppendJson against protobuf's
# MessageToJsonString on real answers (the JSON Lines `trialmatch match`
# wrote, read back into MatchPatientResponse), MB/s of JSON.
if(TARGET trialmatch_protojson AND TARGET trialmatch_proto)
  add_executable(protojson_bench ${CMAKE_CURRENT_LIST_DIR}/protojson_bench.cc)
  target_link_libraries(protojson_bench PRIVATE trialmatch_protojson
    trialmatch_proto benchmark::benchmark nlohmann_json::nlohmann_json
    absl::flags absl::flags_parse)
endif()
