"""The contracts validate the API's inputs; the matching domain validates what it scores. They
must agree on the criteria a weight may name (else a need or offer the API accepted would be
dead-lettered by the matcher and never matched)."""

from g60_contracts.types import EnterpriseCriterion, FunderCriterion
from matching.domain.model import ENTERPRISE_CRITERIA, FUNDER_CRITERIA


def test_the_contracts_name_the_engine_s_score_criteria() -> None:
    assert [c.value for c in EnterpriseCriterion] == list(ENTERPRISE_CRITERIA)
    assert [c.value for c in FunderCriterion] == list(FUNDER_CRITERIA)
