# sync_bench: full sync of every recorded study from the fake upstream and
# imports (corpus array, ~1 GB generated array) with the real binary, under
# /usr/bin/time -v. `cmake --build <dir> --target sync_bench` runs it; the
# script can also be run by hand (see its header). Figures: docs/sync.md.
if(TARGET trialmatch)
  add_custom_target(sync_bench
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/sync_bench.sh $<TARGET_FILE:trialmatch>
            ${TRIALMATCH_SHARED_DATA_DIR} ${TRIALMATCH_PYTHON}
    DEPENDS trialmatch
    USES_TERMINAL
    COMMENT "sync and import throughput (bench/sync_bench.sh)")
endif()
