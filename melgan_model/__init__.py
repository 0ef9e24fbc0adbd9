"""MEL-GAN: a genre-conditioned mel-spectrogram GAN with Griffin-Lim and MelGAN-vocoder inversion.

model.py holds the networks, train.py trains them from a genres/ folder, sample.py makes audio.
"""
