"""The API guide in the repository (docs/api.md) and the app's own description
(/api/v1/openapi.json) name the same endpoints: a method and path in one is in the other."""
from __future__ import annotations

import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "api.md"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# A row of the endpoints table: "| GET `/api/v1/...` |" or "| PATCH / DELETE `/api/v1/...` |".
ROW = re.compile(r"^\|\s*((?:(?:GET|POST|PUT|PATCH|DELETE)\s*/?\s*)+)`/api/v1(/[^`]*)`\s*\|")


def guide_endpoints(text: str) -> set[tuple[str, str]]:
    found = set()
    for line in text.splitlines():
        match = ROW.match(line)
        if match:
            for method in re.findall(r"GET|POST|PUT|PATCH|DELETE", match.group(1)):
                found.add((method, match.group(2)))
    return found


def openapi_endpoints(document: dict) -> set[tuple[str, str]]:
    assert [s["url"] for s in document["servers"]] == ["/api/v1"]
    return {(method.upper(), path) for path, operations in document["paths"].items()
            for method in operations if method.upper() in METHODS}


def test_the_guide_reads_rows_of_both_shapes():
    text = ("| GET `/api/v1/crops` | anyone | | x |\n"
            "| PATCH / DELETE `/api/v1/listings/{id}` | farmer | | y |\n"
            "| not a row `/api/v1/x` |\n")
    assert guide_endpoints(text) == {("GET", "/crops"), ("PATCH", "/listings/{id}"),
                                     ("DELETE", "/listings/{id}")}


def test_every_endpoint_of_the_guide_is_in_openapi_and_the_other_way_round(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    served = openapi_endpoints(response.get_json())
    documented = guide_endpoints(GUIDE.read_text(encoding="utf-8"))
    assert len(documented) >= 20  # the table was read, not skipped
    assert documented - served == set(), "in docs/api.md but not in /api/v1/openapi.json"
    assert served - documented == set(), "in /api/v1/openapi.json but not in docs/api.md"


def test_the_readme_links_the_guide_inside_the_repository():
    readme = (GUIDE.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "docs/api.md" in readme
    assert "../shared" not in readme


# Settings: every name the code reads from the environment is in the README's table.
SETTING = re.compile(r"""(?:environ\.get|environ\[|getenv|_env_bool|env\.get)\(?\s*["']([A-Z][A-Z0-9_]+)["']""")
SKIP_DIRS = {"node_modules", "test-artifacts", "instance", "migrations", "__pycache__"}


def settings_read(root: Path) -> set[str]:
    names = set()
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).parts
        if any(p.startswith(".") or p in SKIP_DIRS for p in parts):
            continue
        names |= set(SETTING.findall(path.read_text(encoding="utf-8")))
    return names


def test_settings_are_found_in_every_spelling_the_code_uses():
    text = ('os.environ.get("PORT", "5000")\nos.environ["PROXY_FIX_HOPS"]\n'
            '_env_bool("SESSION_COOKIE_SECURE", True)\nenv.get("MINGA_SANDBOX_STORE")\n')
    assert set(SETTING.findall(text)) == {"PORT", "PROXY_FIX_HOPS", "SESSION_COOKIE_SECURE",
                                          "MINGA_SANDBOX_STORE"}


def test_the_readme_lists_every_setting_the_code_reads():
    root = GUIDE.parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", table, re.M))
    read = settings_read(root)
    assert {"PORT", "HOST", "MINGA_SANDBOX_STORE", "BENCH_PG_URL", "CHROME_PATH",
            "DATABASE_URL", "SECRET_KEY"} <= read  # the scan finds what it should
    assert read - listed == set(), "read by the code but not in the README's settings"
    assert listed - read == set(), "in the README's settings but read nowhere"
