import CURCUMemb
