"""`make bench`: every benchmark on SQLite and PostgreSQL, one after the other."""
import subprocess
import sys

BENCHES = ["bench.pools_bench", "bench.payouts_bench", "bench.reconcile_bench",
           "bench.bank_bench", "bench.year_end_bench", "bench.photo_bench",
           "bench.pages_bench", "bench.throughput", "bench.plots_import_bench",
           "bench.lots_bench", "bench.invoices_bench"]


def main() -> int:
    status = 0
    for module in BENCHES + sys.argv[1:]:
        print(f"== {module}", flush=True)
        status |= subprocess.call([sys.executable, "-m", module])
    return status


if __name__ == "__main__":
    sys.exit(main())
