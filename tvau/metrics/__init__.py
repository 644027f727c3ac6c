"""Evaluation metrics (docs/method.md section 9): frame.py (micro/macro AUC, pixel AUROC, mIoU),
regions.py (RBDC/TBDC, heatmap -> region detections), text.py (BLEU-4, yes/no accuracy),
formats.py (the public tracks/detections text files). No model imports here."""
