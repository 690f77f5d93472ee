# fixtures.cmake — run as `cmake -DSRC=<source> -DDST=<build>/models -P`.
# Extracts every tests/fixtures/*.tar.xz (one model directory each) into DST,
# extracts tests/data/*.tar.xz (the Llama-3 tokenizer) into DST/_data, and
# copies the tokenizer files into every model directory that lacks them, so
# that each bundled model is a complete Hugging Face checkpoint directory.
file(MAKE_DIRECTORY ${DST} ${DST}/_data)
file(GLOB models ${SRC}/tests/fixtures/*.tar.xz)
foreach(a ${models})
  file(ARCHIVE_EXTRACT INPUT ${a} DESTINATION ${DST})
endforeach()
file(GLOB data ${SRC}/tests/data/*.tar.xz)
foreach(a ${data})
  file(ARCHIVE_EXTRACT INPUT ${a} DESTINATION ${DST}/_data)
endforeach()
file(GLOB dirs LIST_DIRECTORIES true ${DST}/*)
foreach(d ${dirs})
  if(IS_DIRECTORY ${d} AND EXISTS ${d}/config.json)
    foreach(f tokenizer.json tokenizer_config.json)
      if(NOT EXISTS ${d}/${f} AND EXISTS ${DST}/_data/llama3-tokenizer/${f})
        file(COPY ${DST}/_data/llama3-tokenizer/${f} DESTINATION ${d})
      endif()
    endforeach()
  endif()
endforeach()
file(TOUCH ${DST}/.stamp)
