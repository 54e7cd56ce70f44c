"""``python -m transfigure`` runs the command line."""

from transfigure.cli import main

if __name__ == "__main__":
    main()
