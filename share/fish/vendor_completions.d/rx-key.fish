# fish completion for rx-key: generated from the argparse definitions by `python -m rx.client.completion` (make docs): do not edit

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

function _rx_key_position --description 'the number of positional words before the cursor'
    set -l valued -c --config-dir -l --list -a --accept -r --reject -d --delete -p --print -f --finger --gen-keys --gen-keys-dir --out --output
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

complete -c rx-key -f
complete -c rx-key -s h -l help -d 'show this help message and exit'
complete -c rx-key -s c -l config-dir -x -a '(__fish_complete_directories)' -d 'config directory'
complete -c rx-key -s l -l list -x -a 'acc un rej den all' -d 'list the keys in one state: acc, un'
complete -c rx-key -s L -l list-all -d 'list all keys'
complete -c rx-key -s a -l accept -x -a '(__rx_complete_names keys)' -d 'accept pending keys matching GLOB'
complete -c rx-key -s A -l accept-all -d 'accept all pending keys'
complete -c rx-key -s r -l reject -x -a '(__rx_complete_names keys)' -d 'reject pending keys matching GLOB'
complete -c rx-key -s R -l reject-all -d 'reject all pending keys'
complete -c rx-key -s d -l delete -x -a '(__rx_complete_names keys)' -d 'delete keys matching GLOB, in any state'
complete -c rx-key -s D -l delete-all -d 'delete all keys'
complete -c rx-key -s p -l print -x -a '(__rx_complete_names keys)' -d 'print the public keys matching GLOB'
complete -c rx-key -s P -l print-all -d 'print all public keys'
complete -c rx-key -s f -l finger -x -a '(__rx_complete_names keys)' -d 'print fingerprints of keys matching GLOB'
complete -c rx-key -s F -l finger-all -d 'print fingerprints of all keys, the master\'s own included'
complete -c rx-key -l gen-keys -x -d 'make a minion key pair NAME.key and NAME.pub in --gen-keys-dir, to preseed a min'
complete -c rx-key -l rotate -d 'rotate the session key now: every minion authenticates again'
complete -c rx-key -l gen-keys-dir -x -a '(__fish_complete_directories)' -d 'where --gen-keys writes'
complete -c rx-key -l include-accepted -d 'with -r/-R: also reject accepted keys'
complete -c rx-key -l include-rejected -d 'with -a/-A: also accept rejected keys'
complete -c rx-key -l include-denied -d 'with -a/-A/-r/-R: also take denied keys'
complete -c rx-key -l include-all -d 'with -a/-A: also rejected keys'
complete -c rx-key -s q -l quiet -d 'print nothing but errors and what was asked for'
complete -c rx-key -s y -l yes -d 'do not ask for confirmation'
complete -c rx-key -l out -l output -x -a 'text json' -d 'output format'
complete -c rx-key -l version -d 'show program\'s version number and exit'
