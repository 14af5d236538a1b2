"""Evaluation with a classifier prism-edge trains itself: FID-LeNet, PRDC, class balance."""
