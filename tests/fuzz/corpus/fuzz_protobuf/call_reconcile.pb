

f	J



t
a