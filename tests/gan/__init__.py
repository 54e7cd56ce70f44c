"""Tests for transfigure.gan."""
