"""TedRec's fusion parts (usable on other backbones) and the TedRec model."""

from tedrec.adaptor import MODULATIONS, modulation_adaptor
from tedrec.fusion import FrequencyFusion
from tedrec.model import TedRec

__all__ = ["MODULATIONS", "FrequencyFusion", "TedRec", "modulation_adaptor"]
