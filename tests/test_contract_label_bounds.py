"""Label values are bounded in the metrics contract: a global bound, lowered per label, that
every value the contract itself names obeys; a contract breaking it is refused with the
file and field, and nothing is written."""
from __future__ import annotations

import pytest
import yaml

from conftest import run_cli


def test_the_contract_bounds_every_label_and_the_identifiers_tighter(definitions):
    contract = definitions.contract
    assert contract.label_value_max_length == 128
    # Identifiers reach alert summaries and dashboard links: 64 characters at most.
    assert (contract.max_length("campaign_id"), contract.max_length("pool_id")) == (64, 64)
    assert contract.max_length("provider") == 128  # no bound of its own: the global one


def _break(repo_copy, change) -> str:
    path = repo_copy / "contract" / "metrics.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out = repo_copy / "out"
    result = run_cli("--root", str(repo_copy), "render", "--out", str(out))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert not out.exists()  # nothing written
    return result.stderr


@pytest.mark.parametrize("change, message", [
    (lambda d: d["labels"]["provider"]["values"].append("p" * 129),
     f"contract/metrics.yaml:labels.provider.values: '{'p' * 129}' is 129 characters, over this label's bound of 128"),
    (lambda d: d["labels"]["status"].update(max_length=5),
     "contract/metrics.yaml:labels.status.values: 'upcoming' is 8 characters, over this label's bound of 5"),
    (lambda d: d["labels"]["campaign_id"].update(max_length=200),
     "contract/metrics.yaml:labels.campaign_id.max_length: 200 is over label_value_max_length (128); a label may only lower the global bound"),
    (lambda d: d.pop("label_value_max_length"),
     "contract/metrics.yaml"),
], ids=["value-over-global", "value-over-label", "label-over-global", "no-global-bound"])
def test_a_contract_breaking_its_bounds_is_refused(repo_copy, change, message):
    stderr = _break(repo_copy, change)
    assert message in stderr, stderr
