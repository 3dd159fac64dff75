# fish completion for rx-run: generated from the argparse definitions by `python -m rx.client.completion` (make docs): do not edit

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

function _rx_run_position --description 'the number of positional words before the cursor'
    set -l valued -c --config-dir -t --timeout --out --output --out-indent -l --log-level
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

complete -c rx-run -f
complete -c rx-run -s h -l help -d 'show this help message and exit'
complete -c rx-run -s c -l config-dir -x -a '(__fish_complete_directories)' -d 'config directory'
complete -c rx-run -s t -l timeout -x -d 'seconds runners that wait may wait: the ping of manage.up/down/status/versions, '
complete -c rx-run -s y -l yes -d 'agree beforehand to what the runner changes'
complete -c rx-run -l async -d 'run in the background: print the jid at once'
complete -c rx-run -s d -l doc -d 'show the documentation of FUN, or of every runner matching it'
complete -c rx-run -l out -l output -x -a 'nested json jsonl yaml txt raw' -d 'output format'
complete -c rx-run -l out-indent -x -d 'indent of json output'
complete -c rx-run -l no-color -d 'never colour the output'
complete -c rx-run -l allow-control-chars -d 'print control characters in minion data as they are'
complete -c rx-run -l no-parse -x -d 'keyword arguments'
complete -c rx-run -s l -l log-level -x -a 'all garbage trace debug profile info warning error critical quiet' -d 'log level on stderr: all, garbage, trace, debug, profile, info, warning, error, '
complete -c rx-run -l version -d 'show program\'s version number and exit'
complete -c rx-run -n '_rx_run_position 0' -a '(__rx_complete_names runners)' -d 'the runner, module.function'
