#!/usr/bin/env bash
# Re-records tests/data/servers/*.pcap: runs the server tests of tests/netns.rs
# live (as root, with the tools .ci/run installs) and keeps their captures, so
# that runs which cannot record (no root, a tool missing) check the same
# expectations on these files. All traffic stays between the two network
# namespaces the tests create.
set -euo pipefail
cd "$(dirname "$0")/.."
IOTWATCH_SAVE_CAPTURES=1 cargo test --release --test netns -- --test-threads 1
ls -l tests/data/servers/
