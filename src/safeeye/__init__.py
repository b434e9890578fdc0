"""safeeye: find a victim's sexual deepfakes and leaked intimate images online; get them deleted."""

__version__ = "0.1.0"
