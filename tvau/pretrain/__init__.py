"""Pretraining of the embedded backbone's vision tower on a synthetic world where every action is
ordinary: the stand-in for a vendor's pretraining of Qwen2.5-VL."""
