# Argument checks shared by the scripts of Benchmarks/ (sourced, not run). The script defines `usage` first; a bad
# argument is named, the usage follows, and the script exits 2 before it builds, installs, starts or writes anything.

fail() {
    echo "error: $1" >&2
    usage >&2
    exit 2
}

# whole_number NAME VALUE LOWEST HIGHEST: VALUE is a whole number from LOWEST to HIGHEST (decimal: `08` is 8).
whole_number() {
    if ! [[ "$2" =~ ^[0-9]{1,9}$ ]] || [ "$((10#$2))" -lt "$3" ] || [ "$((10#$2))" -gt "$4" ]; then
        fail "$1 must be a whole number from $3 to $4, not '$2'"
    fi
}
