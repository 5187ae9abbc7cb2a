# Shared by the bench-*.sh scripts (sourced, not run).

# The median of the numbers on standard input, one per line.
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
