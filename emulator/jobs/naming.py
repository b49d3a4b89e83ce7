"""Job names shaped like Azure ML's generated ones (``sincere_lemon_8xq2r3kfpz``)."""

import secrets
import string

_ADJECTIVES = ("able", "amiable", "bold", "brave", "bright", "busy", "calm", "clever", "cool",
               "eager", "gentle", "happy", "heroic", "honest", "jolly", "keen", "kind", "lucid",
               "lively", "mighty", "musing", "neat", "nice", "patient", "plucky", "polite",
               "quiet", "quirky", "sharp", "sincere", "sleepy", "stoic", "sunny", "tender",
               "tidy", "upbeat", "vivid", "witty", "zen")
_NOUNS = ("apple", "arm", "bear", "boat", "cabbage", "carrot", "cat", "cloud", "coat", "dog",
          "eagle", "fig", "fish", "garden", "glove", "grape", "hat", "island", "kettle", "kiwi",
          "lemon", "lime", "lizard", "mango", "napkin", "ocean", "owl", "pear", "pepper", "plum",
          "quill", "river", "rose", "salt", "shoe", "soup", "tiger", "tree", "wall", "yacht")
_ALPHABET = string.ascii_lowercase + string.digits


def generate_job_name() -> str:
    suffix = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}_{suffix}"
