cB
ÿA