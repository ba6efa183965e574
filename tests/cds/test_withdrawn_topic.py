"""CDS Hooks and a withdrawn topic: no card for it, at once in the process that withdrew it (in
others within RELEASE_CHECK_SECONDS, like the pages); cards again once it is reinstated."""

import pytest

from decisions.knowledge import publishing
from decisions.knowledge.models import Topic
from tests.cds.conftest import MRI_LUMBAR_WO_W, condition, hook_request, service_request

pytestmark = pytest.mark.django_db


def test_a_withdrawn_topic_gets_no_card_and_a_reinstated_one_gets_it_again(cds, shipped_with_test_codes):
    body = hook_request(
        "order-select",
        [service_request("mri-1", MRI_LUMBAR_WO_W, text="MRI L-spine w/wo")],
        conditions=[condition("known-cancer", condition_id="c-1"), condition("no-neuro-deficit")],
    )
    topic = Topic.objects.get(key="lumbar-metastasis")
    assert len(cds.invoke(body).json()["cards"]) == 1

    publishing.withdraw(topic, reason="A rating is being corrected.")
    withdrawn = cds.invoke(body).json()
    publishing.reinstate(topic, reason="Corrected.")
    reinstated = cds.invoke(body).json()

    assert withdrawn == {"cards": []}
    assert len(reinstated["cards"]) == 1
