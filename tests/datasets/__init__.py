"""Tests of transfigure.datasets."""
