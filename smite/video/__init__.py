"""Shot segmentation: windows, guided denoising (tracks + low-pass regulariser), trackers, voting, DCT, crops."""
