"""``python -m medigan_zoo`` works like ``medigan-zoo`` (also under torchrun)."""
from medigan_zoo.cli import main

if __name__ == "__main__":
    main()
