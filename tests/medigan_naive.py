"""medigan 1.0.0's search and rank, ported as a naive recursive scan without any index.

The reference that ``MediganSelector``'s precomputed index is checked against, in the tests
(tests/test_medigan_parity.py) and in the benchmark (benchmarks/bench_search.py).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional


def naive_find(configs: Dict[str, Any], values: List[Any], operator: str, keys: bool, cs: bool) -> List[dict]:
    """medigan 1.0.0's recursive_search_for_values + check_if_is_match."""
    targets = list(values) if cs else [str(v).lower() for v in values]
    out = []
    for model_id, config in configs.items():
        entries: List[dict] = []

        def visit(node):
            for key in node:
                if keys:
                    if not cs and key.lower() in targets:
                        entries.append({"key": "key", "value": key, "matching_element": key.lower()})
                    elif key in targets:
                        entries.append({"key": "key", "value": key, "matching_element": key})
                value = node[key]
                if isinstance(value, dict):
                    visit(value)
                    continue
                for item in (value if isinstance(value, list) else [value]):
                    if not cs:
                        item = str(item).lower()
                    if str(item) in targets:
                        entries.append({"key": key, "value": item, "matching_element": str(item)})

        if config.get("selection") is not None:
            visit(config["selection"])
        found = {e["matching_element"] for e in entries}
        match = bool(entries) and (operator == "OR" or (operator == "AND" and all(t in found for t in targets))
                                   or (operator == "XOR" and len(found.intersection(targets)) == 1))
        if match:
            out.append({"model_id": model_id, "is_match": True, "target_values": targets, "operator": operator,
                        "are_keys_also_matched": keys, "is_case_sensitive": cs,
                        "matched_entries": {str(i): e for i, e in enumerate(entries)}})
    return out


def naive_rank(configs: Dict[str, Any], ids: Optional[List[str]], metric: str, order: str) -> List[dict]:
    """medigan 1.0.0's rank_models_by_performance (numbers and lists of numbers; ids=None: all models)."""
    wanted = None if ids is None else set(ids)
    rows = []
    for model_id, config in configs.items():
        if wanted is not None and model_id not in wanted:
            continue
        node = config["selection"].get("performance")
        try:
            for part in metric.split("."):
                node = node[part]
        except (KeyError, TypeError):
            continue
        if node is None:
            continue
        if isinstance(node, list):
            node = min(node) if order == "asc" else max(node)
        rows.append({"model_id": model_id, metric: node})
    rows.sort(key=lambda r: r[metric], reverse=order != "asc")
    return rows
