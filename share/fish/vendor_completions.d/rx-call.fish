# fish completion for rx-call: generated from the argparse definitions by `python -m rx.client.completion` (make docs): do not edit

function __rx_complete_names --description 'names from rx --complete, with the line\'s -c DIR'
    set -l words (commandline -opc)
    set -l cfg
    for i in (seq (count $words))
        switch $words[$i]
            case -c --config-dir
                set cfg -c $words[(math $i + 1)]
            case '--config-dir=*'
                set cfg -c (string replace -- --config-dir= '' $words[$i])
        end
    end
    set -l kind $argv[1]
    if test $kind = minions; and begin; contains -- -N $words; or contains -- --nodegroup $words; end
        set kind nodegroups
    end
    rx --complete $kind $cfg 2>/dev/null
end

function _rx_call_position --description 'the number of positional words before the cursor'
    set -l valued -c --config-dir --id -t --timeout --out --output -l --log-level
    set -l words (commandline -opc)
    set -l n 0
    set -l skip 0
    for w in $words[2..-1]
        if test $skip = 1
            set skip 0
        else if contains -- $w $valued
            set skip 1
        else if not string match -q -- '-*' $w
            set n (math $n + 1)
        end
    end
    test $n = $argv[1]
end

complete -c rx-call -f
complete -c rx-call -s h -l help -d 'show this help message and exit'
complete -c rx-call -l local -d 'run without a master: no key, no network, the return goes nowhere but stdout'
complete -c rx-call -s c -l config-dir -x -a '(__fish_complete_directories)' -d 'minion config directory'
complete -c rx-call -l id -x -d 'with --local: the minion id to report'
complete -c rx-call -s t -l timeout -x -d 'seconds to wait for the master to take the return'
complete -c rx-call -l retcode-passthrough -d 'exit with the function\'s own retcode'
complete -c rx-call -l out -l output -x -a 'nested json jsonl yaml txt raw' -d 'output format'
complete -c rx-call -l allow-control-chars -d 'print control characters in minion data as they are'
complete -c rx-call -l no-parse -x -d 'keyword arguments'
complete -c rx-call -s l -l log-level -x -a 'all garbage trace debug profile info warning error critical quiet' -d 'log level on stderr: all, garbage, trace, debug, profile, info, warning, error, '
complete -c rx-call -l version -d 'show program\'s version number and exit'
complete -c rx-call -n '_rx_call_position 0' -a '(__rx_complete_names functions)' -d 'the function, module.function'
