"""Files: plates and mattes (OpenImageIO), frame sequences, part names, Cryptomatte, contact sheets."""
