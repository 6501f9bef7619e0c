# Sourced by the benchmarks (from the repository root): the table they load.
#
# bench_table OUT [BENCH [SEED]]: writes the real full table of
# ../shared/data, one prefix a line, to OUT; without it, `accel-bench
# gen-table`'s table with the same prefix-length mix (BENCH: its path,
# built when absent; SEED: 42). Sets TABLE to say which.
bench_table() {
    local out=$1 bench=${2:-target/release/accel-bench} seed=${3:-42}
    local data=../shared/data/bgp-full-table.txt.gz
    if [ -r "$data" ]; then
        TABLE="real full table ($data)"
        zcat "$data" | tr -d '\r' >"$out"
    else
        TABLE="GENERATED table with the real table's prefix-length mix ($data absent)"
        [ -x "$bench" ] || cargo build --release --bin accel-bench >&2
        "$bench" gen-table --seed "$seed" >"$out"
    fi
}
