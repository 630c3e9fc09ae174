module comet

go 1.26
