import pytest

from foresight.formats.taxonomy import LABEL_NAMES, check_labels, derive_flags, labels_from_scores, labels_in


def test_six_labels_and_groups():
    assert len(LABEL_NAMES) == 6
    assert labels_in("reasoning") == ("code_reasoning", "math_reasoning", "science_reasoning")
    assert labels_in("visual") == ("visual_concept", "visual_attribute", "visual_relationship")


def test_derived_flags_and_thresholds():
    flags = derive_flags(["math_reasoning"])
    assert list(flags) == ["reasoning", "visual", *LABEL_NAMES]
    assert {k for k, v in flags.items() if v} == {"reasoning", "math_reasoning"}
    assert not any(derive_flags([]).values())
    assert labels_from_scores({"visual_attribute": 0.7, "code_reasoning": 0.2}) == ["visual_attribute"]


def test_label_list_mismatch_is_refused():
    with pytest.raises(ValueError, match="missing"):
        check_labels(list(LABEL_NAMES[:-1]))
