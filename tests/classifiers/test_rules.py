import numpy as np
import pytest

from foresight.classifiers.teacher import rules
from foresight.classifiers.teacher.rules import LABELLING_FUNCTIONS, RulesTeacher, explain, scores_from_votes
from foresight.formats.taxonomy import LABEL_NAMES

CODE = "def area(r):\n    return 3.14 * r * r\n\nfor i in range(10):\n    print(area(i));\n"
MATH = ("Theorem 2. For every prime p, $\\sum_{k=1}^{p-1} k \\equiv 0$. Proof. Suppose x = 2y + 1; "
        "hence the sum is divisible.")
SCIENCE = ("The enzyme binds the protein in the cell membrane, which causes the molecule to change shape; the "
           "experiment measured the reaction rate at each temperature (Smith et al., 2019) [3].")
OBJECTS = "The old man walked past the house, the church and the bridge, carrying a basket of bread and a candle."
COLOURS = "Her dress was crimson and gold, with pale blue ribbons and a black velvet collar."
SPATIAL = "The cup sat on top of the shelf, beside the clock and next to a vase, in front of the mirror."
PLAIN = "The committee will discuss the budget proposal and its implications for next year's policy agenda."

# (labelling function, a text it must vote on, a text it must abstain on)
CASES = {
    "code_syntax": (CODE, PLAIN), "code_fence": ("Run ```pip install x``` first.", PLAIN),
    "code_vocabulary": ("The compiler inlines the recursive function and the loop over the array of pointers.", PLAIN),
    "latex": (MATH, PLAIN), "equations": ("Let x = 3 + 4 and y = x^2 - 2 so 7/2 < y.", PLAIN),
    "proof_vocabulary": ("By the lemma and the theorem, the integral of the polynomial converges; hence QED.", PLAIN),
    "science_vocabulary": (SCIENCE, PLAIN), "citations": (SCIENCE, PLAIN), "causal_science": (SCIENCE, OBJECTS),
    "object_nouns": (OBJECTS, PLAIN), "visible_actions": ("The boy climbed the tree and held a rope; the dog jumped "
                                                          "over the fence and ran.", PLAIN),
    "colour_words": (COLOURS, PLAIN), "shape_size_texture": ("A tiny round wooden box with a smooth, polished lid.",
                                                             PLAIN),
    "spatial_prepositions": (SPATIAL, PLAIN), "part_whole": ("The handle of the knife is made of bone.", PLAIN),
}


def test_every_labelling_function_has_a_case():
    assert {lf.name for lf in LABELLING_FUNCTIONS} == set(CASES)


@pytest.mark.parametrize("lf", LABELLING_FUNCTIONS, ids=lambda lf: lf.name)
def test_labelling_function_votes_and_abstains(lf):
    positive, negative = CASES[lf.name]
    assert 0 < lf.fn(positive) <= 1, f"{lf.name} should vote on its positive example"
    assert lf.fn(negative) == 0, f"{lf.name} should abstain on {negative!r}"


def test_noisy_or_combines_votes():
    s = scores_from_votes({"colour_words": 0.5, "shape_size_texture": 0.5})
    assert s[LABEL_NAMES.index("visual_attribute")] == pytest.approx(0.75)
    assert s[LABEL_NAMES.index("code_reasoning")] == 0


@pytest.mark.parametrize("text,label", [(CODE, "code_reasoning"), (MATH, "math_reasoning"),
                                        (SCIENCE, "science_reasoning"), (OBJECTS, "visual_concept"),
                                        (COLOURS, "visual_attribute"), (SPATIAL, "visual_relationship")])
def test_teacher_labels_clear_examples(text, label):
    scores = RulesTeacher().predict_scores([text])
    assert scores[0, LABEL_NAMES.index(label)] >= 0.5


def test_plain_text_empty_and_non_english_get_no_label():
    t = RulesTeacher()
    scores = t.predict_scores([PLAIN, "", "   \n", "Le chat dort sur le canapé pendant que la pluie tombe."])
    assert (scores < 0.5).all()
    assert t.stats["empty"] == 2
    assert explain("  ") == {}


def test_explain_keeps_votes_and_info_is_stable():
    votes = explain(SPATIAL)
    assert votes["spatial_prepositions"] == 1.0 and all(0 < v <= 1 for v in votes.values())
    info = RulesTeacher().info()
    assert info["kind"] == "rules" and len(info["sha256"]) == 64 and info == RulesTeacher().info()
    assert RulesTeacher().predict_scores([]).shape == (0, len(LABEL_NAMES))
    assert isinstance(rules.scores_from_votes({}), np.ndarray)
