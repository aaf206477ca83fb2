"""docs/routes.md from a node's own route table (GET /v1/admin/routes):
every route, who may call it and the scope it needs. gate_matrix_test
checks that the file is what this prints, so the document stays true.

Usage: routes_md.py ROUTES_JSON_FILE > docs/routes.md
"""

import json
import sys

WHO = {
    "open": "anyone",
    "key": "a key with the scope",
    "admin": "an admin key with the scope",
    "capability": "the request's own credential (token, signature), checked by the route",
}
NAMES = {
    "native": "reel's own API (`/v1`)",
    "uploads": "Uploads API",
    "apivideo": "api.video",
    "gcore": "Gcore Streaming",
    "flare": "Flare",
    "plain": "media, player and tus",
}


def render(table):
    out = [
        "# Every route",
        "",
        "Generated from a node's route table (`GET /v1/admin/routes`, admin",
        "key) by `tests/gate_matrix/routes_md.py`; `gate_matrix_test` fails",
        "when this file and the table differ. Every request passes the same",
        "gate: it authenticates the key (in the dialect's own way), checks",
        "its rate, its tenant and the route's scope, finds the video the",
        "route names within the key's tenant, reads the body within its",
        "limit, and answers errors in the dialect's own shape",
        "([api.md](api.md#conventions)).",
        "",
        "Scopes: " + ", ".join(f"`{s}`" for s in table["scopes"]) + ".",
        "A key made without `scopes` holds them all.",
        "",
    ]
    by_dialect = {}
    for r in table["data"]:
        by_dialect.setdefault(r["dialect"], []).append(r)
    for d, routes in by_dialect.items():
        out += [f"## {NAMES.get(d, d)}", "", "| route | who | scope | names a video |",
                "|---|---|---|---|"]
        for r in routes:
            pattern = r["pattern"].replace("|", "\\|")
            out.append(f"| `{r['method']} {pattern}` | {WHO[r['access']]} | "
                       f"{'`' + r['scope'] + '`' if r['scope'] else '-'} | "
                       f"{r['video'] if r['video'] != 'none' else '-'} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render(json.load(open(sys.argv[1]))), end="")
