"""RAVE: a realtime audio variational autoencoder (PQMF, conv encoder/decoder, spectral then adversarial training), its TorchScript export and genre latents."""
