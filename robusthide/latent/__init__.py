"""Paper 004, "Train the latent, not the image": hide a message while compressing, by editing the latent
y of a learned codec (scale hyperprior) so that its decoded image carries the message for a fixed
steganography decoder; FNNS baselines and LSB steganalysis to compare. See docs/latent.md.

Modules: gdn, entropy, coder (range coding via ``constriction``), models (codec + CompressAI checkpoint
loading), stegnet (FNNS decoder, FNNS-R), message, container (.rhl), editing (code editing, eq. 1),
fnns, steganalysis, train, api, bench.
"""
