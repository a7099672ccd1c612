#!/usr/bin/env bash
# Runs identa's comparison benches and prints the ratios of medians, ending with one line
# of name=value pairs. Also writes docs/performance-chart.svg.
#
#   benches/compare.sh            # SQLite and hashing
#   IDENTA_BENCH_POSTGRES_URL=postgres://user:pass@127.0.0.1/db benches/compare.sh
#
# Ratios are identa's median time over the peer's (below 1 is faster than the peer).
# tower-sessions runs from its own package (benches/peer-tower-sessions: its sqlx 0.8
# cannot share a build with sea-orm 2). Login over HTTP runs the axum host
# (examples/axum/benches/login_http.rs, its own load generator) against the hashing bound;
# whoami over HTTP runs the axum host against an axum + rusqlite floor server answering the
# same bytes (examples/axum/benches/whoami_http.rs). Last, benches/session_scale.rs seeds
# 100,000 then 1,000,000 sessions (about 6 minutes on SQLite, 10 with PostgreSQL) and its
# 1M/100k ratios join the last line, whether or not they pass.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import argon2' 2>/dev/null; then
  echo "installing argon2-cffi (the C reference, libargon2) ..." >&2
  python3 -m pip install -q argon2-cffi >&2
fi

features="--features postgres"
cargo bench $features --bench hashing -- --noplot >&2
cargo bench $features --bench session_lookup -- --noplot >&2
(cd benches/peer-tower-sessions && cargo bench --bench tower_sessions_lookup -- --noplot) >&2
memory_line=$(cargo bench $features --bench login_memory 2>/dev/null | grep '^login_memory_peak_mib=' || echo "login_memory_peak_mib=na")
export memory_line
http_line=$(cargo bench -p identa-axum --bench login_http 2>/dev/null | grep '^login_http_per_s=' || echo "")
export http_line
whoami_http_line=$(cargo bench -p identa-axum --bench whoami_http 2>/dev/null | grep '^whoami_http_per_s=' || echo "")
export whoami_http_line
# The bench exits non-zero when a ratio is over 1.5; its ratios are printed either way.
scale_line=$( (cargo bench $features --bench session_scale 2>/dev/null || true) | grep '^scale_' || true)
export scale_line

# Criterion writes under the target directory, wherever cargo puts it (CARGO_TARGET_DIR,
# .cargo/config.toml, …): ask cargo, for this workspace and for the peer's package.
target_dir() { cargo metadata --format-version 1 --no-deps --manifest-path "$1" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'; }
CRITERION_DIR="$(target_dir Cargo.toml)/criterion"
PEER_CRITERION_DIR="$(target_dir benches/peer-tower-sessions/Cargo.toml)/criterion"
export CRITERION_DIR PEER_CRITERION_DIR

python3 - <<'PY'
import json, os, pathlib

def median(group, bench, root=pathlib.Path(os.environ["CRITERION_DIR"])):
    path = root / group / bench / "new" / "estimates.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["median"]["point_estimate"]  # nanoseconds

def ratio(a, b):
    return None if a is None or b is None else a / b

h, s, p = "argon2id_default", "session_lookup_sqlite_100k", "session_lookup_postgres_100k"
rows = {
    "identa verify": median(h, "identa_verify"),
    "C verify": median(h, "c_reference_verify"),
    "identa verify x2": median(h, "identa_verify_x2_concurrent"),
    "C verify x2": median(h, "c_reference_verify_x2_concurrent"),
    "identa whoami, cached (SQLite)": median(s, "identa_whoami"),
    "identa whoami uncached (SQLite)": median(s, "identa_whoami_uncached"),
    "identa whoami, forged token (SQLite)": median(s, "identa_whoami_forged_token"),
    "rusqlite point lookup": median(s, "rusqlite_point_lookup"),
    "rusqlite whoami statement (SQLite)": median(s, "rusqlite_whoami_statement"),
    "sqlx whoami statement (SQLite)": median(s, "sqlx_whoami_statement_sqlite"),
    "tower-sessions load (SQLite)": median(s, "tower_sessions_load",
                                           pathlib.Path(os.environ["PEER_CRITERION_DIR"])),
    "identa whoami uncached (PostgreSQL)": median(p, "identa_whoami_uncached"),
    "sqlx point lookup (PostgreSQL)": median(p, "sqlx_point_lookup"),
    "sqlx point lookup, no ping (PostgreSQL)": median(p, "sqlx_point_lookup_no_ping"),
    "sqlx whoami statement, no ping (PostgreSQL)": median(p, "sqlx_whoami_statement_no_ping"),
}
for name, ns in rows.items():
    shown = "not measured" if ns is None else (f"{ns/1e6:.2f} ms" if ns > 1e6 else f"{ns/1e3:.2f} µs")
    print(f"{name:40} {shown}")

pairs = {
    "whoami_sqlite_vs_rusqlite": ratio(rows["identa whoami, cached (SQLite)"], rows["rusqlite point lookup"]),
    "whoami_sqlite_uncached_vs_rusqlite": ratio(rows["identa whoami uncached (SQLite)"],
                                                rows["rusqlite point lookup"]),
    "whoami_sqlite_vs_tower_sessions": ratio(rows["identa whoami, cached (SQLite)"], rows["tower-sessions load (SQLite)"]),
    "whoami_pg_vs_sqlx": ratio(rows["identa whoami uncached (PostgreSQL)"], rows["sqlx point lookup (PostgreSQL)"]),
    "whoami_pg_vs_sqlx_no_ping": ratio(rows["identa whoami uncached (PostgreSQL)"],
                                       rows["sqlx point lookup, no ping (PostgreSQL)"]),
    "whoami_pg_vs_same_statement": ratio(rows["identa whoami uncached (PostgreSQL)"],
                                         rows["sqlx whoami statement, no ping (PostgreSQL)"]),
    "forged_token_vs_rusqlite": ratio(rows["identa whoami, forged token (SQLite)"],
                                      rows["rusqlite point lookup"]),
    "verify_vs_c": ratio(rows["identa verify"], rows["C verify"]),
    "verify2_vs_c": ratio(rows["identa verify x2"], rows["C verify x2"]),
    "login_http_vs_hash_bound": None,
}
http = dict(kv.split("=", 1) for kv in os.environ.get("http_line", "").split() if "=" in kv)
if "login_http_vs_hash_bound" in http:
    pairs["login_http_vs_hash_bound"] = float(http["login_http_vs_hash_bound"])
    print(f"{'logins over HTTP':38} {http['login_http_per_s']}/s of a hashing bound of "
          f"{http['hash_bound_per_s']}/s; p50 {http['login_http_p50_ms']} ms, p99 {http['login_http_p99_ms']} ms")

whoami_http = dict(kv.split("=", 1) for kv in os.environ.get("whoami_http_line", "").split() if "=" in kv)
if "whoami_http_vs_floor" in whoami_http:
    print(f"{'whoami over HTTP (axum host)':38} {whoami_http['whoami_http_per_s']}/s, p50 "
          f"{whoami_http['whoami_http_p50_us']} µs, p99 {whoami_http['whoami_http_p99_us']} µs; floor "
          f"(axum + rusqlite) {whoami_http['whoami_http_floor_per_s']}/s, p50 "
          f"{whoami_http['whoami_http_floor_p50_us']} µs, p99 {whoami_http['whoami_http_floor_p99_us']} µs")

# A bar chart of each comparison, identa against its peer, as plain SVG.
bars = [
    ("verify (ms)", rows["identa verify"], rows["C verify"], "libargon2", 1e6),
    ("2 verifies at once (ms)", rows["identa verify x2"], rows["C verify x2"], "libargon2", 1e6),
    ("whoami SQLite, cached: no database read (µs)", rows["identa whoami, cached (SQLite)"],
     rows["rusqlite point lookup"], "rusqlite", 1e3),
    ("whoami SQLite, uncached (µs)", rows["identa whoami uncached (SQLite)"],
     rows["rusqlite point lookup"], "rusqlite", 1e3),
    ("whoami SQLite, cached, vs tower-sessions (µs)", rows["identa whoami, cached (SQLite)"],
     rows["tower-sessions load (SQLite)"], "tower-sessions", 1e3),
    ("whoami PostgreSQL, uncached (µs)", rows["identa whoami uncached (PostgreSQL)"],
     rows["sqlx point lookup (PostgreSQL)"], "sqlx", 1e3),
]
bars = [b for b in bars if b[1] is not None and b[2] is not None]
width, row_h, left = 840, 70, 270
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{40 + row_h * len(bars)}" '
       'font-family="sans-serif" font-size="13">',
       '<text x="10" y="22" font-size="15" font-weight="bold">identa vs peers (median, shorter is faster)</text>']
for i, (label, ours, theirs, peer, unit) in enumerate(bars):
    y = 40 + i * row_h
    top = max(ours, theirs)
    for j, (who, value, colour) in enumerate([("identa", ours, "#3b6ea8"), (peer, theirs, "#b0b0b0")]):
        w = (width - left - 160) * value / top
        yy = y + j * 24
        svg.append(f'<rect x="{left}" y="{yy}" width="{w:.1f}" height="20" fill="{colour}"/>')
        svg.append(f'<text x="{left + w + 6:.1f}" y="{yy + 15}">{value / unit:.2f} {who}</text>')
    svg.append(f'<text x="10" y="{y + 27}">{label}</text>')
svg.append("</svg>")
pathlib.Path("docs/performance-chart.svg").write_text("\n".join(svg) + "\n")

fmt = lambda v: "na" if v is None else f"{v:.3f}"
p99 = f" login_http_p99_ms={http['login_http_p99_ms']}" if "login_http_p99_ms" in http else ""
print(" ".join(f"{k}={fmt(v)}" for k, v in pairs.items()) + p99 + " " + os.environ.get("memory_line", "")
      + " " + os.environ.get("whoami_http_line", "") + " " + os.environ.get("scale_line", ""))
PY
