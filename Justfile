# plpywasm: a trusted PostgreSQL language running Python in a WebAssembly sandbox.
# `just demo` and `just test` work on a fresh machine: both run `setup` first.

pg_config := env_var_or_default("PG_CONFIG", "/usr/lib/postgresql/15/bin/pg_config")

# List the recipes.
default:
    @just --list

# Install what building and testing need (Debian packages, cargo-pgrx, componentize-py). Idempotent.
setup:
    bash scripts/setup.sh

# Build the Python guest component (target/guest.wasm) with componentize-py.
guest:
    bash scripts/build-guest.sh

# Build the extension and compile the guest ahead of time (target/plpywasm_guest.cwasm).
build: guest
    cargo build --release --locked -p plpywasm-precompile
    target/release/plpywasm-precompile target/guest.wasm target/plpywasm_guest.cwasm
    cargo build --release --locked -p plpywasm

# Install the extension and its precompiled guest into the PostgreSQL that pg_config names.
install: build
    rm -rf target/package
    cargo pgrx package --pg-config {{pg_config}} --out-dir target/package
    bash scripts/install.sh {{pg_config}}

# Start a throwaway cluster and run examples/demo.sql in it.
demo: setup install
    bash scripts/demo.sh

# Run the test suite against a real, throwaway PostgreSQL cluster.
test: setup install
    cargo test --release --locked -p plpywasm-precompile
    bash tests/run.sh

# Benchmark plpywasm against plpython3u (plpgsql and SQL as a floor); writes BENCHMARKS.md and BENCHMARKS.png.
bench: setup install
    bash bench/run.sh
